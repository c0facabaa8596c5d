"""The least a first run that installs its wheels before the model imports them can cost:
`python installfloor.py FOLDER LOCK SCRIPT [--ahead]` downloads every wheel of this
interpreter's section of the carton lock LOCK (JSON) at once, with the standard library
only, checks its sha256, unpacks it into FOLDER, puts the unpacked folders first on
`sys.path`, then runs SCRIPT's code as `python SCRIPT` would.

With `--ahead`, a second process started first compiles, once the wheels are unpacked,
what SCRIPT's imports will load (carton's own walk, `compileahead.ahead`), on the second
core while this one imports: a first run of this kind on two cores.

The wheels are installed by the model's own process, which imports nothing but the
standard library for it: no worker, no selection (the section is the one whose marker
environment names this Python and platform), no RECORD check, nothing published
atomically, no lock. Without `--ahead`, modules are compiled on import, on one core.
carton's first runs do all of this and what is left out.
"""

from __future__ import annotations

import ast
import hashlib
import http.client
import json
import os
import platform
import subprocess
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


def install(wheel: dict[str, object], folder: str) -> None:
    """Download `wheel` (http only) into `folder`, check its sha256, unpack it beside
    (`unpacked`)."""
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
    target = unpacked(wheel, folder)
    with zipfile.ZipFile(path) as archive:
        archive.extractall(target + ".part")
    os.rename(target + ".part", target)  # whole, for the process that compiles ahead


def unpacked(wheel: dict[str, object], folder: str) -> str:
    """The folder `wheel` is unpacked into."""
    return os.path.join(folder, str(wheel["name"]).removesuffix(".whl"))


# The second process of `--ahead`: argv[1] holds carton_hook, argv[2] the wheels'
# folders, argv[3] the names to follow; it starts once every folder is there.
_AHEAD = """\
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
roots, names = json.loads(sys.argv[2]), json.loads(sys.argv[3])
deadline = time.monotonic() + 60
while not all(os.path.isdir(r) for r in roots) and time.monotonic() < deadline:
    time.sleep(0.001)
from carton_hook.installing.compileahead import ahead
ahead(names, roots, "")
"""


def imported_names(script: str) -> list[str]:
    """The top-level names the imports of `script` name."""
    with open(script, "rb") as source:
        tree = ast.parse(source.read())
    names = {alias.name.partition(".")[0] for node in ast.walk(tree)
             if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module.partition(".")[0] for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.module and not node.level}
    return sorted(names)


def start_ahead(script: str, folders: list[str]) -> None:
    """Start the process that compiles ahead (`_AHEAD`)."""
    hook = next(p for p in sys.path if os.path.isdir(os.path.join(p, "carton_hook")))
    subprocess.Popen([sys.executable, "-I", "-S", "-c", _AHEAD, hook, json.dumps(folders),
                      json.dumps(imported_names(script))])


def main() -> None:
    folder, lock_path, script = sys.argv[1:4]
    os.makedirs(folder)
    with open(lock_path, encoding="utf-8") as f:
        wheels = section(json.load(f))
    folders = [unpacked(wheel, folder) for wheel in wheels]
    if sys.argv[4:] == ["--ahead"]:
        start_ahead(script, folders)
    failed: list[BaseException] = []

    def one(i: int) -> None:
        try:
            install(wheels[i], folder)
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
