"""The `__main__.py` of an executable carton: `python model.carton [ARGS...]`.

Copied into the archive at pack time, with RUNTIME set to the key of the runtime files
the archive carries (`runtime/hook/`: carton_hook; `runtime/deps/`: what its worker
imports). On first use they are extracted into `$CARTON_HOME/runtime/py3X/<key>/`, each
checked against MANIFEST, compiled, and published by one rename; every run then does
what `python -m carton_hook model.carton ARGS...` does, or, with `CARTON_INTERPRETER=1`,
what `python ARGS...` does with the carton's packages (carton_hook/loading/interpreter.py).
Only the standard library is used here: this runs on a Python that has nothing else
installed.
"""

RUNTIME = ""  # set at pack time: sha256 of the runtime's lines of MANIFEST

_COMPLETE = ".carton-complete"


def _main() -> None:
    import os
    import sys

    # This file runs on whatever Python the user has; the runtime it starts needs 3.10.
    if sys.version_info < (3, 10):  # noqa: UP036
        sys.stderr.write(f"carton: error: {sys.argv[0]} runs on CPython 3.10 or newer; this "
                         f"is Python {sys.version.split()[0]}: run it with python3.10 or "
                         "newer\n")
        raise SystemExit(1)
    archive = os.path.realpath(sys.argv[0])
    home = os.environ.get("CARTON_HOME") or _home()
    tag = f"py{sys.version_info[0]}{sys.version_info[1]}"
    root = os.path.join(home, "runtime", tag, RUNTIME)
    if not os.path.isfile(os.path.join(root, _COMPLETE)):
        import zipfile
        import zlib

        try:
            _extract(archive, root)
        except (OSError, ValueError, KeyError, EOFError, RuntimeError, zipfile.BadZipFile,
                zlib.error) as exc:  # a damaged archive: corrupt data, a bad CRC, ...
            sys.stderr.write(f"carton: error: {sys.argv[0]}: cannot set up the runtime this "
                             f"carton carries in {root}: {exc}\n")
            raise SystemExit(1) from None
    # The archive itself leaves the path: its folders are not packages of the model.
    sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != archive]
    sys.path.insert(0, os.path.join(root, "hook"))
    os.environ["CARTON_RUNTIME_DEPS"] = os.path.join(root, "deps")
    from carton_hook.cache.inuse import hold

    if not hold(root):  # `cache clear` took it out this very moment
        sys.stderr.write(f"carton: error: {root} was removed while {sys.argv[0]} started; "
                         "run it again\n")
        raise SystemExit(1)
    if os.environ.get("CARTON_INTERPRETER", "").strip().lower() in ("1", "true", "yes", "on"):
        from carton_hook.loading.interpreter import run  # behave like `python` itself

        raise SystemExit(run(sys.argv[0], sys.argv[1:]))
    from carton_hook.__main__ import main

    raise SystemExit(main(["--", sys.argv[0], *sys.argv[1:]]))


def _home() -> str:
    """As carton_hook.cache.layout.carton_home, which cannot be imported before it is extracted."""
    import os
    import sys
    import tempfile

    default = os.path.join(os.path.expanduser("~"), ".carton")
    if os.path.isdir(default) or os.access(os.path.dirname(default), os.W_OK):
        return default
    cwd = os.getcwd()
    home = (os.path.join(cwd, ".carton") if os.access(cwd, os.W_OK) else
            os.path.join(tempfile.gettempdir(), f"carton-{os.getuid()}"))
    sys.stderr.write(f"carton: warning: {default} cannot be created (the home folder is not "
                     f"writable); using {home} (set CARTON_HOME to choose)\n")
    os.environ["CARTON_HOME"] = home
    return home


def _extract(archive: str, root: str) -> None:
    import hashlib
    import os
    import shutil
    import tempfile
    import zipfile

    with zipfile.ZipFile(archive) as zf:
        manifest = {}
        for line in zf.read("MANIFEST").decode("utf-8").splitlines():
            name, _, digest = line.rpartition("=")
            manifest[name] = digest
        members = sorted(n for n in manifest if n.startswith("runtime/"))
        lines = "".join(f"{n}={manifest[n]}\n" for n in members).encode("utf-8")
        if hashlib.sha256(lines).hexdigest() != RUNTIME:
            raise ValueError("its runtime files do not match MANIFEST (a changed archive?)")
        parent = os.path.dirname(root)
        os.makedirs(parent, exist_ok=True)
        work = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
        try:
            for name in members:
                parts = name.split("/")[1:]
                if not parts or any(p in ("", ".", "..") or "\\" in p for p in parts):
                    raise ValueError(f"unsafe member {name!r}")
                data = zf.read(name)
                if hashlib.sha256(data).hexdigest() != manifest[name]:
                    raise ValueError(f"{name} does not match its MANIFEST hash")
                target = os.path.join(work, *parts)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "xb") as f:
                    f.write(data)
            _compile(work, root)
            with open(os.path.join(work, _COMPLETE), "x") as f:
                f.write('{"format": 1}')
            try:
                os.rename(work, root)
            except OSError:
                if not os.path.isfile(os.path.join(root, _COMPLETE)):
                    raise  # not a lost race with another first run
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _compile(work: str, final: str) -> None:
    """`.pyc` files naming their final paths (PYTHONDONTWRITEBYTECODE would stop Python
    from writing them later, and the folder never changes once published)."""
    import compileall

    # One process: a pool would re-import this __main__ from the archive in its children.
    compileall.compile_dir(work, ddir=final, quiet=2)


if __name__ == "__main__":
    _main()
