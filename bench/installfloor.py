"""The least a first run that installs its wheels before the model imports them can cost:
`python installfloor.py FOLDER LOCK SCRIPT` downloads every wheel of this interpreter's
section of the carton lock LOCK (JSON) at once, with the standard library only, checks
its sha256, unpacks it into FOLDER, puts the unpacked folders first on `sys.path`, then
runs SCRIPT's code as `python SCRIPT` would.

All of it in one process that is already running, with nothing to import but the
standard library: no worker, no selection (the section is the one whose marker
environment names this Python and platform), no RECORD check, nothing published
atomically, no lock. Modules are compiled on import, on one core. carton's first runs
do all of that and more; what they can win back is the second core (compiling ahead,
unpacking in a second process).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import platform
import sys
import threading
import zipfile
from urllib.parse import urlsplit


def section(lock: dict[str, object]) -> list[dict[str, object]]:
    """The wheels of this interpreter's section of `lock`."""
    here = {"python_version": f"{sys.version_info[0]}.{sys.version_info[1]}",
            "sys_platform": sys.platform, "platform_machine": platform.machine()}
    for env in lock["environments"]:  # type: ignore[attr-defined]
        marker = env["marker-environment"]
        if all(marker.get(k) == v for k, v in here.items()):
            return [wheel for package in env["packages"] for wheel in package["wheels"]]
    raise SystemExit(f"no section of the lock for {here}")


def install(wheel: dict[str, object], folder: str) -> str:
    """Download `wheel` (http only), check its sha256, unpack it: its folder."""
    url = urlsplit(str(wheel["url"]))
    if url.scheme != "http" or url.hostname is None:
        raise SystemExit(f"installfloor: only http URLs: {wheel['url']}")
    connection = http.client.HTTPConnection(url.hostname, url.port or 80)
    connection.request("GET", url.path)
    response = connection.getresponse()
    if response.status != 200:
        raise SystemExit(f"installfloor: {wheel['url']}: HTTP {response.status}")
    path = os.path.join(folder, str(wheel["name"]))
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        while chunk := response.read(1 << 16):
            digest.update(chunk)
            out.write(chunk)
    connection.close()
    if digest.hexdigest() != wheel["hashes"]["sha256"]:  # type: ignore[index]
        raise SystemExit(f"installfloor: {wheel['name']}: sha256 mismatch")
    target = path.removesuffix(".whl")
    with zipfile.ZipFile(path) as archive:
        archive.extractall(target)
    return target


def main() -> None:
    folder, lock_path, script = sys.argv[1:4]
    os.makedirs(folder)
    with open(lock_path, encoding="utf-8") as f:
        wheels = section(json.load(f))
    folders: list[str] = [""] * len(wheels)
    failed: list[BaseException] = []

    def one(i: int) -> None:
        try:
            folders[i] = install(wheels[i], folder)
        except BaseException as exc:  # noqa: BLE001 - reported below, from the main thread
            failed.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(wheels))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failed:
        raise failed[0]
    sys.path[:0] = [os.path.dirname(os.path.abspath(script)), *folders]
    sys.argv = [script]
    with open(script, "rb") as source:
        code = compile(source.read(), script, "exec")
    exec(code, {"__name__": "__main__", "__file__": script, "__builtins__": __builtins__})


if __name__ == "__main__":
    main()
