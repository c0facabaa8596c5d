"""THREATS.md's network rows through the public path: a model run with `python -m
carton_hook`, whose lock points at the fault-injecting HTTPS server, imports a locked
wheel; what the server does to that request decides what the import sees."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..conftest import run_hook
from ..factory import ALPHA_MODEL, make_wheel
from ..faultserver import (
    ConnectProxy,
    Fault,
    FaultServer,
    bad_range,
    endless,
    fault_server,
    gzip_encoded,
    ignore_range,
    redirect,
    redirect_loop,
    stall,
    status,
    truncate,
    wrong_bytes,
)
from ..indexserver import PackageIndex


@dataclass
class Served:
    """A model folder whose one locked wheel is served by `server` at `path`."""

    model: Path
    server: FaultServer
    path: str
    env: dict[str, str]

    def run(self, *faults: Fault, env: dict[str, str] | None = None) -> tuple[str, str]:
        self.server.script(self.path, *faults)
        self.server.reset()
        self.server.connections = 0
        proc = run_hook({**self.env, **(env or {})}, self.model)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip(), proc.stderr

    def cache_entries(self) -> list[Path]:
        return list(Path(self.env["CARTON_HOME"]).glob("pythonpackages/*/[0-9a-f]*"))


@pytest.fixture
def served(tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
           hermetic_env: dict[str, str]) -> Iterator[Served]:
    # A wheel big enough that a cut at 70 kB leaves a tail (random bytes do not deflate);
    # the same bytes in each test, so that its lock is kept.
    blob = random.Random(1).randbytes(120_000)
    wheel = pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", files={
        "alpha/__init__.py": "VALUE = 'alpha 1.0'\n", "alpha/blob.bin": blob}))
    build_carton("alpha\n", {"model.py": ALPHA_MODEL})
    folder = tmp_path / "models" / "demo-model"
    with fault_server(tmp_path / "tls") as server:
        assert server.ca_file is not None
        path = f"/packages/{wheel.name}"
        url = server.add(path, wheel.read_bytes(), etag='"alpha-1"')
        lock_file = folder / ".carton" / "carton.lock"
        lock = json.loads(lock_file.read_text())
        for env in lock["environments"]:
            for package in env["packages"]:
                package["wheels"][0]["url"] = url
        lock_file.write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n")
        env = {**hermetic_env, "CARTON_CA_BUNDLE": str(server.ca_file)}
        yield Served(folder, server, path, env)


def test_a_healthy_server_is_asked_once(served: Served) -> None:
    out, _ = served.run()
    assert out == "imported alpha 1.0"
    assert served.server.count() == 1
    out, _ = served.run()  # warm: no request at all
    assert out == "imported alpha 1.0"
    assert served.server.count() == 0


@pytest.mark.parametrize(("fault", "message"), [
    (wrong_bytes(), "sha256"),
    (gzip_encoded(), "not the locked one"),
    (endless(), "more than the locked"),
], ids=["wrong-bytes", "gzip", "endless"])
def test_wrong_bytes_fail_the_import_without_retry(served: Served, fault: Fault,
                                                  message: str) -> None:
    out, _ = served.run(fault)
    kind, _, text = out.partition(" | ")
    assert kind == "CartonImportError"
    assert "cannot import alpha" in text and message in text
    assert served.server.count() == 1  # the wrong file is not asked for again
    assert served.server.requests[0].headers.get("Accept-Encoding") == "identity"
    assert served.cache_entries() == []


def test_a_cut_transfer_resumes(served: Served) -> None:
    out, _ = served.run(truncate(70_000))
    assert out == "imported alpha 1.0"
    ranges = [r.headers.get("Range") for r in served.server.requests]
    assert ranges == [None, "bytes=70000-"]


def test_a_server_that_ignores_range_restarts_the_file(served: Served) -> None:
    out, _ = served.run(truncate(70_000), ignore_range())
    assert out == "imported alpha 1.0"
    assert served.server.count() == 2


def test_a_resume_at_the_wrong_offset_is_refused(served: Served) -> None:
    out, _ = served.run(truncate(70_000), bad_range(0))
    assert out.startswith("CartonImportError | ") and "resume at byte 70000" in out
    assert served.server.count() == 2
    assert served.cache_entries() == []


def test_a_stall_past_the_read_timeout_resumes(served: Served) -> None:
    out, _ = served.run(stall(5_000), env={"CARTON_READ_TIMEOUT": "0.5"})
    assert out == "imported alpha 1.0"
    assert [r.headers.get("Range") for r in served.server.requests] == [None, "bytes=5000-"]


def test_retry_after_then_success(served: Served) -> None:
    out, _ = served.run(status(503, retry_after="1"), status(429, retry_after="1"))
    assert out == "imported alpha 1.0"
    assert served.server.count() == 3


def test_not_found_is_not_retried(served: Served) -> None:
    out, _ = served.run(status(404))
    assert out.startswith("CartonImportError | ") and "HTTP 404" in out
    assert served.server.count() == 1


def test_https_to_http_redirect_is_refused(served: Served) -> None:
    out, _ = served.run(redirect("http://127.0.0.1:9/alpha.whl"))
    assert out.startswith("CartonImportError | ") and "refusing" in out
    assert served.server.count() == 1


def test_a_redirect_loop_ends(served: Served) -> None:
    out, _ = served.run(redirect_loop())
    assert out.startswith("CartonImportError | ") and "redirects" in out
    assert served.server.count() == 6


def test_an_untrusted_certificate_fails_without_a_request(served: Served) -> None:
    env = {k: v for k, v in served.env.items() if k != "CARTON_CA_BUNDLE"}
    served.env = env
    out, _ = served.run()
    assert out.startswith("CartonImportError | ") and "TLS failure" in out
    assert served.server.count() == 0
    assert served.server.connections == 1  # one handshake, no retry


def test_the_proxy_in_https_proxy_is_used(served: Served) -> None:
    proxy = ConnectProxy().start()
    try:
        out, _ = served.run(env={"HTTPS_PROXY": proxy.url})
        assert out == "imported alpha 1.0"
        assert len(proxy.tunnels) == 1
    finally:
        proxy.stop()


def test_offline_cold_names_the_wheel_and_sends_nothing(served: Served) -> None:
    out, _ = served.run(env={"CARTON_OFFLINE": "1"})
    assert out.startswith("CartonImportError | ") and "alpha" in out and "OFFLINE" in out
    assert served.server.count() == 0
