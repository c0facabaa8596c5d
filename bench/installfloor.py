"""The least a first run that installs its wheels before the model imports them can cost,
with every check a first run owes and nothing in the model's process but the model:
`python installfloor.py FOLDER LOCK SCRIPT [--ahead]` starts a bare second interpreter
(`-I -S`, standard library only) that downloads every wheel of this interpreter's
section of the carton lock LOCK (JSON) at once, checks its sha256, checks each member's
path and its bytes against the wheel's RECORD, writes it into a work folder (never
through a link, never over a file) and renames that folder into FOLDER when all of it
matched; the model's process then puts those folders first on `sys.path` and runs
SCRIPT's code as `python SCRIPT` would. The model's process imports nothing for the
install (no `http.client`, no `ssl`, no `zipfile`): what it has loaded when the model
starts is what carton's loading would have.

With `--ahead`, the second process then compiles what SCRIPT's imports will load
(carton's own walk, `compileahead.ahead`), on the second core while the model's process
imports: such a first run on two cores.

Left out, against carton: selection (the section is the one whose marker environment
names this Python and platform), the cache's locks, fsync, installer's scheme mapping and
scripts, the plan, the finder and isolation; its second process has no urllib3,
installer or packaging to import.
"""

from __future__ import annotations

import os
import subprocess
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# The lines the second process writes: one folder per wheel, then this one.
DONE = "."


def section(lock: dict[str, Any]) -> list[dict[str, Any]]:
    """The wheels of this interpreter's section of `lock`."""
    import platform

    here = {"python_version": f"{sys.version_info[0]}.{sys.version_info[1]}",
            "sys_platform": sys.platform, "platform_machine": platform.machine()}
    for env in lock["environments"]:
        marker = env["marker-environment"]
        if all(marker.get(k) == v for k, v in here.items()):
            return [wheel for package in env["packages"] for wheel in package["wheels"]]
    raise SystemExit(f"no section of the lock for {here}")


def unpacked(wheel: dict[str, Any], folder: str) -> str:
    """The folder `wheel` is unpacked into."""
    return os.path.join(folder, str(wheel["name"]).removesuffix(".whl"))


def download(wheel: dict[str, Any]) -> bytes:
    """`wheel`'s bytes (http only), checked against the lock's sha256."""
    import hashlib
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(str(wheel["url"]))
    if url.scheme != "http" or url.hostname is None:
        raise SystemExit(f"installfloor: only http URLs: {wheel['url']}")
    connection = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=60)
    connection.request("GET", url.path)
    response = connection.getresponse()
    if response.status != 200:
        raise SystemExit(f"installfloor: {wheel['url']}: HTTP {response.status}")
    data = response.read()
    connection.close()
    if hashlib.sha256(data).hexdigest() != wheel["hashes"]["sha256"]:
        raise SystemExit(f"installfloor: {wheel['name']}: sha256 mismatch")
    return data


def unpack(wheel: dict[str, Any], data: bytes, folder: str) -> None:
    """Check every member of the wheel `data` (a safe relative path, its bytes and size
    as RECORD says), write it into a work folder, then rename that into place."""
    import base64
    import csv
    import hashlib
    import io
    import zipfile

    name = str(wheel["name"])
    archive = zipfile.ZipFile(io.BytesIO(data))
    record = next(n for n in archive.namelist()
                  if n.count("/") == 1 and n.endswith(".dist-info/RECORD"))
    rows = {row[0]: row for row in csv.reader(io.StringIO(archive.read(record).decode()))
            if row}
    target = unpacked(wheel, folder)
    work = target + ".part"
    made: set[str] = set()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    for info in archive.infolist():
        member = info.filename
        if member.endswith("/"):
            continue
        parts = member.split("/")
        if member.startswith("/") or "\\" in member or any(p in ("", ".", "..") for p in parts):
            raise SystemExit(f"installfloor: {name}: unsafe member {member!r}")
        content = archive.read(info)
        if member != record:
            row = rows.get(member)
            if row is None or len(row) < 3:
                raise SystemExit(f"installfloor: {name}: {member!r} is not in RECORD")
            algorithm, _, expected = row[1].partition("=")
            digest = base64.urlsafe_b64encode(hashlib.new(algorithm, content).digest())
            if digest.rstrip(b"=").decode() != expected or row[2] != str(len(content)):
                raise SystemExit(f"installfloor: {name}: {member!r} does not match RECORD")
        parent = os.path.dirname(os.path.join(work, member))
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        fd = os.open(os.path.join(work, member), flags, 0o644)
        try:
            os.write(fd, content)
        finally:
            os.close(fd)
    os.rename(work, target)  # whole, or not at all


def install(folder: str, lock_path: str, script: str, hook: str) -> None:
    """The second process: install every wheel at once, say where, then (given the folder
    `hook` that holds carton_hook) compile ahead."""
    import json
    import threading

    with open(lock_path, encoding="utf-8") as f:
        wheels = section(json.load(f))
    failed: list[BaseException] = []

    def one(wheel: dict[str, Any]) -> None:
        try:
            unpack(wheel, download(wheel), folder)
        except BaseException as exc:  # noqa: BLE001 - reported below, from the main thread
            failed.append(exc)

    threads = [threading.Thread(target=one, args=(wheel,)) for wheel in wheels]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failed:
        raise failed[0]
    folders = [unpacked(wheel, folder) for wheel in wheels]
    sys.stdout.write("".join(f"{path}\n" for path in [*folders, DONE]))
    sys.stdout.close()  # the model's process goes on now
    if hook != "-":
        sys.path.insert(0, hook)
        from carton_hook.installing.compileahead import ahead

        # Until the model's process ends, as carton's own walk does.
        ahead(imported_names(script), folders, "", owner=os.getppid())


def imported_names(script: str) -> list[str]:
    """The top-level names the imports of `script` name."""
    import ast

    with open(script, "rb") as source:
        tree = ast.parse(source.read())
    names = {alias.name.partition(".")[0] for node in ast.walk(tree)
             if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module.partition(".")[0] for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.module and not node.level}
    return sorted(names)


def main() -> None:
    folder, lock_path, script = sys.argv[1:4]
    os.makedirs(folder)
    hook = "-"
    if sys.argv[4:] == ["--ahead"]:
        hook = next(p for p in sys.path if os.path.isdir(os.path.join(p, "carton_hook")))
    helper = subprocess.Popen([sys.executable, "-I", "-S", os.path.abspath(__file__),
                               "--install", folder, lock_path, script, hook],
                              stdout=subprocess.PIPE, text=True)
    assert helper.stdout is not None
    folders = []
    for line in helper.stdout:
        if line.rstrip("\n") == DONE:
            break
        folders.append(line.rstrip("\n"))
    else:
        raise SystemExit(f"installfloor: the installing process failed ({helper.wait()})")
    sys.path[:0] = [os.path.dirname(os.path.abspath(script)), *folders]
    sys.argv = [script]
    with open(script, "rb") as source:
        code = compile(source.read(), script, "exec")
    exec(code, {"__name__": "__main__", "__file__": script, "__builtins__": __builtins__})


if __name__ == "__main__":
    if sys.argv[1:2] == ["--install"]:
        install(*sys.argv[2:6])
    else:
        main()
