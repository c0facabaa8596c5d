"""Build real wheels, sdists and model folders at test time (RECORD computed, never pasted).

Sdists made here carry a tiny in-tree PEP 517 backend (`backend-path`), so that pip can
build them without fetching setuptools: the tests stay hermetic.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import stat
import tarfile
import textwrap
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path


def record_row(path: str, data: bytes) -> list[str]:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return [path, f"sha256={digest}", str(len(data))]


def demo_wheel(directory: Path, members: Mapping[str, tuple[bytes, int]], *,
               written: Mapping[str, bytes] | None = None,
               rows: Sequence[Sequence[str]] | None = None) -> Path:
    """`demo-1.0-py3-none-any.whl` with `members` (bytes, mode) in that order and a RECORD
    computed from them (or `rows`); `written` replaces some members' bytes after RECORD
    is computed (tampering)."""
    dist_info = "demo-1.0.dist-info"
    rows = rows or [record_row(name, data) for name, (data, _) in members.items()]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([*rows, [f"{dist_info}/RECORD", "", ""]])
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        everything = {**members, f"{dist_info}/RECORD": (buf.getvalue().encode(), 0o644)}
        for name, (data, mode) in everything.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, (written or {}).get(name, data))
    return path


def normalize(name: str) -> str:
    return name.replace("-", "_").replace(".", "_").lower()


def make_wheel(
    directory: Path,
    name: str,
    version: str = "1.0",
    files: Mapping[str, str | bytes] | None = None,
    *,
    requires: Sequence[str] = (),
    tag: str = "py3-none-any",
    record: bool = True,
    extra_members: Mapping[str, bytes] | None = None,
    record_override: Sequence[Sequence[str]] | None = None,
) -> Path:
    """Write `{name}-{version}-{tag}.whl` with the given files and a correct RECORD.

    `files` defaults to a package `{name}/__init__.py` that records its version.
    `extra_members` are added after RECORD is computed (so they are not listed in it);
    `record_override` replaces RECORD's rows: both exist to make broken wheels.
    """
    dist = normalize(name)
    if files is None:
        files = {f"{dist}/__init__.py": f"__version__ = {version!r}\n"}
    dist_info = f"{dist}-{version}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Requires-Dist: {r}" for r in requires]
    contents: dict[str, bytes] = {
        path: (data.encode() if isinstance(data, str) else data) for path, data in files.items()
    }
    contents[f"{dist_info}/METADATA"] = ("\n".join(meta) + "\n").encode()
    contents[f"{dist_info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: carton-tests\nRoot-Is-Purelib: true\nTag: {tag}\n"
    ).encode()
    rows = [record_row(p, d) for p, d in contents.items()] + [[f"{dist_info}/RECORD", "", ""]]
    if record_override is not None:
        rows = [list(r) for r in record_override]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    if record:
        contents[f"{dist_info}/RECORD"] = buf.getvalue().encode()
    contents.update(extra_members or {})
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{dist}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in contents.items():
            info = zipfile.ZipInfo(member, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return path


# An in-tree build backend: turns the sdist's `src/` into a pure wheel. It honours
# SOURCE_DATE_EPOCH, so two builds of one sdist give the same bytes.
BACKEND = textwrap.dedent('''
    import base64, csv, hashlib, io, os, time, zipfile
    from pathlib import Path

    NAME, VERSION, REQUIRES = {name!r}, {version!r}, {requires!r}
    DIST = NAME.replace("-", "_").replace(".", "_").lower()

    def _meta():
        lines = ["Metadata-Version: 2.1", "Name: " + NAME, "Version: " + VERSION]
        lines += ["Requires-Dist: " + r for r in REQUIRES]
        return "\\n".join(lines) + "\\n"

    def get_requires_for_build_wheel(config_settings=None):
        return []

    def get_requires_for_build_sdist(config_settings=None):
        return []

    def prepare_metadata_for_build_wheel(directory, config_settings=None):
        d = Path(directory) / f"{{DIST}}-{{VERSION}}.dist-info"
        d.mkdir(parents=True)
        (d / "METADATA").write_text(_meta())
        return d.name

    def build_wheel(directory, config_settings=None, metadata_directory=None):
        epoch = int(os.environ.get("SOURCE_DATE_EPOCH", time.time()))
        stamp = time.gmtime(max(epoch, 315532800))[:6]
        di = f"{{DIST}}-{{VERSION}}.dist-info"
        files = {{}}
        for p in sorted(Path("src").rglob("*")):
            if p.is_file():
                files[p.relative_to("src").as_posix()] = p.read_bytes()
        files[di + "/METADATA"] = _meta().encode()
        files[di + "/WHEEL"] = (b"Wheel-Version: 1.0\\nGenerator: t\\n"
                                b"Root-Is-Purelib: true\\nTag: py3-none-any\\n")
        rows = []
        for k, v in files.items():
            h = base64.urlsafe_b64encode(hashlib.sha256(v).digest()).rstrip(b"=").decode()
            rows.append([k, "sha256=" + h, str(len(v))])
        rows.append([di + "/RECORD", "", ""])
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\\n").writerows(rows)
        files[di + "/RECORD"] = buf.getvalue().encode()
        name = f"{{DIST}}-{{VERSION}}-py3-none-any.whl"
        with zipfile.ZipFile(Path(directory) / name, "w", zipfile.ZIP_DEFLATED) as zf:
            for k, v in files.items():
                zi = zipfile.ZipInfo(k, date_time=stamp)
                zi.external_attr = 0o100644 << 16
                zi.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(zi, v)
        return name
''')


def write_source_tree(directory: Path, name: str, version: str = "1.0",
                      files: Mapping[str, str] | None = None,
                      requires: Sequence[str] = ()) -> Path:
    """A project folder with the in-tree backend: what a local-folder requirement names."""
    dist = normalize(name)
    files = files or {f"{dist}/__init__.py": f"__version__ = {version!r}\n"}
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = []
        build-backend = "intree_backend"
        backend-path = ["."]
    """))
    (directory / "intree_backend.py").write_text(
        BACKEND.format(name=name, version=version, requires=list(requires)))
    for rel, text in files.items():
        target = directory / "src" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return directory


def make_sdist(directory: Path, name: str, version: str = "1.0",
               files: Mapping[str, str] | None = None, requires: Sequence[str] = ()) -> Path:
    """Write `{name}-{version}.tar.gz` whose build needs nothing from any index."""
    dist = normalize(name)
    tree = write_source_tree(directory / f".src-{dist}-{version}", name, version, files, requires)
    pkg_info = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    path = directory / f"{dist}-{version}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        def add(arcname: str, data: bytes) -> None:
            info = tarfile.TarInfo(f"{dist}-{version}/{arcname}")
            info.size = len(data)
            info.mtime = 1577836800
            tar.addfile(info, io.BytesIO(data))

        add("PKG-INFO", pkg_info)
        for p in sorted(tree.rglob("*")):
            if p.is_file():
                add(p.relative_to(tree).as_posix(), p.read_bytes())
    return path


def write_model(directory: Path, requirements: str = "", *, name: str = "demo-model",
                version: str = "0.1.0", carton: str = 'entrypoint = "model:main"\n',
                files: Mapping[str, str] | None = None, project: str = "") -> Path:
    """A model folder: pyproject.toml, requirements.txt and a model module; `project`:
    more lines of its [project] table."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["carton-backend"]\nbuild-backend = "carton_backend"\n\n'
        f'[project]\nname = "{name}"\nversion = "{version}"\n{project}\n[tool.carton]\n{carton}'
    )
    (directory / "requirements.txt").write_text(requirements)
    defaults = {"model.py": "def main():\n    print('hello from the model')\n    return 0\n"}
    for rel, text in {**defaults, **(files or {})}.items():
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return directory


# A model whose `main` imports the locked wheel `alpha` and prints what became of the
# import: "imported" and alpha's VALUE, or the ImportError's class and message (exit 0
# either way), so that a test of a fault reads the import's fate from stdout.
ALPHA_MODEL = """
def main():
    try:
        import alpha
    except ImportError as exc:
        print(type(exc).__name__, '|', exc)
        return 0
    print('imported', alpha.VALUE)
"""


def c_compiler() -> str | None:
    """A C compiler, or None (tests that need one skip, saying why)."""
    import shutil

    return shutil.which("cc") or shutil.which("gcc")


def compile_shared(out: Path, source: str, *, soname: str | None = None,
                   links: Sequence[Path] = (), runpath: str | None = None,
                   python_extension: bool = False) -> bytes:
    """Compile C `source` into the shared object `out` and return its bytes.

    `links` are libraries to link against (recorded as DT_NEEDED by their SONAME),
    `runpath` is written as-is (`$ORIGIN/...`), and `python_extension` adds Python's
    include folder.
    """
    import subprocess
    import sysconfig

    compiler = c_compiler()
    assert compiler is not None
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.with_name(out.name.replace(".", "_") + ".c")
    src.write_text(source)
    cmd = [compiler, "-shared", "-fPIC", "-o", str(out), str(src), *map(str, links)]
    if soname:
        cmd.append(f"-Wl,-soname,{soname}")
    if runpath:
        cmd.append(f"-Wl,-rpath,{runpath}")
    if python_extension:
        cmd.append(f"-I{sysconfig.get_paths()['include']}")
    subprocess.run(cmd, check=True, capture_output=True)
    return out.read_bytes()


def pack_metadata_tree(model: Path) -> str:
    """The model folder's `.carton/dist-info/` tree moved into a metadata pack, as
    extracting a .carton writes it (formats/metadatapack.py): the pack's path."""
    import shutil

    from carton_hook.formats.metadatapack import PACK, PACKED_DIR, PackWriter

    meta = model / PACKED_DIR
    with open(model / PACK, "xb") as file:
        writer = PackWriter(file)
        for path in sorted(p for p in meta.rglob("*") if p.is_file()):
            writer.add(path.relative_to(meta).as_posix(), [path.read_bytes()])
        writer.finish()
    shutil.rmtree(meta)
    return str(model / PACK)
