"""A real package index on 127.0.0.1: PEP 503 HTML and PEP 691 JSON, counting requests."""

from __future__ import annotations

import hashlib
import html
import json
import re
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


def project_of(filename: str) -> str:
    stem = filename[: -len(".whl")] if filename.endswith(".whl") else filename.rsplit(".tar", 1)[0]
    name = stem.split("-")[0] if filename.endswith(".whl") else stem.rsplit("-", 1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


class PackageIndex:
    """Serves the files put in it. `json=False` makes it answer HTML only, like the index
    these machines reach; `wrong_hashes` advertises a false sha256 for a file, `yanked`
    marks files as yanked."""

    def __init__(self, root: Path, *, json: bool = True, port: int = 0) -> None:
        self.root = root
        self.files_dir = root / "files"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.json = json
        self.wrong_hashes: dict[str, str] = {}
        self.yanked: set[str] = set()  # file names served as yanked (PEP 592)
        # File names whose download waits until their event is set.
        self.held: dict[str, threading.Event] = {}
        # Files sent at most this many bytes a second, all of them together: a network
        # link instead of the loopback (None: as fast as the loopback goes).
        self.bandwidth: float | None = None
        self._link_free = 0.0  # when the link has sent what it was given so far
        # Serve each wheel's METADATA beside it (PEP 658/714), as PyPI does: a resolver
        # then reads it instead of downloading the wheel.
        self.core_metadata = False
        self.requests: list[str] = []
        self.bytes_sent = 0  # of files and pages, all requests together
        self.sent: dict[str, int] = {}  # bytes of each file sent, by file name
        self.sent_in_ranges: dict[str, int] = {}  # of which in answers to Range requests
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        # serve_forever checks for shutdown() every poll interval: 0.5 s by default, which
        # each test's teardown would wait out for each index it stopped.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/simple/"

    def file_url(self, filename: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/files/{quote(filename)}"

    def add(self, path: Path) -> Path:
        target = self.files_dir / path.name
        shutil.copyfile(path, target)
        return target

    def start(self) -> PackageIndex:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()
            self.bytes_sent = 0
            self.sent.clear()
            self.sent_in_ranges.clear()

    def _projects(self) -> dict[str, list[Path]]:
        out: dict[str, list[Path]] = {}
        for f in sorted(self.files_dir.iterdir()):
            out.setdefault(project_of(f.name), []).append(f)
        return out

    def _metadata(self, wheel: Path) -> bytes | None:
        """The wheel's `.dist-info/METADATA`, or None."""
        import zipfile

        if not wheel.is_file():
            return None
        with zipfile.ZipFile(wheel) as zf:
            name = next((n for n in zf.namelist() if n.count("/") == 1
                         and n.endswith(".dist-info/METADATA")), None)
            return zf.read(name) if name else None

    def _metadata_attributes(self, f: Path) -> str:
        if not self.core_metadata or not f.name.endswith(".whl"):
            return ""
        meta = self._metadata(f)
        if meta is None:
            return ""
        digest = f"sha256={hashlib.sha256(meta).hexdigest()}"
        return f' data-dist-info-metadata="{digest}" data-core-metadata="{digest}"'

    def _sha(self, f: Path) -> str:
        return self.wrong_hashes.get(f.name) or hashlib.sha256(f.read_bytes()).hexdigest()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        index = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self.do_GET(head=True)

            def do_GET(self, head: bool = False) -> None:
                self.head = head
                with index._lock:
                    index.requests.append(self.path)
                parts = [unquote(p) for p in self.path.split("?")[0].split("/") if p]
                if (parts[:1] == ["files"] and len(parts) == 2 and index.core_metadata
                        and parts[1].endswith(".whl.metadata")):
                    meta = index._metadata(index.files_dir / parts[1][:-len(".metadata")])
                    if meta is not None:
                        return self._send(200, "application/octet-stream", meta)
                elif parts[:1] == ["files"] and len(parts) == 2:
                    f = index.files_dir / parts[1]
                    if parts[1] in index.held:
                        index.held[parts[1]].wait(120)
                    if f.is_file():
                        return self._file(f.read_bytes())
                elif parts[:1] == ["simple"] and len(parts) == 2:
                    files = index._projects().get(parts[1])
                    if files:
                        return self._project(parts[1], files)
                elif parts == ["simple"]:
                    body = "".join(f'<a href="{p}/">{p}</a>\n' for p in index._projects())
                    return self._send(200, "text/html", body.encode())
                self._send(404, "text/plain", b"not found")

            def _project(self, project: str, files: list[Path]) -> None:
                if index.json and JSON_TYPE in (self.headers.get("Accept") or ""):
                    data = {"meta": {"api-version": "1.0"}, "name": project, "files": [
                        {"filename": f.name, "url": f"../../files/{quote(f.name)}",
                         "hashes": {"sha256": index._sha(f)},
                         **({"yanked": True} if f.name in index.yanked else {})}
                        for f in files]}
                    return self._send(200, JSON_TYPE, json.dumps(data).encode())
                links = "".join(
                    f'<a href="../../files/{quote(f.name)}#sha256={index._sha(f)}"'
                    f'{" data-yanked" if f.name in index.yanked else ""}'
                    f"{index._metadata_attributes(f)}>"
                    f"{html.escape(f.name)}</a><br/>\n" for f in files)
                body = f"<!DOCTYPE html><html><body>\n{links}</body></html>\n"
                self._send(200, "text/html", body.encode())

            def _file(self, data: bytes) -> None:
                """A file, or the one byte range asked for (as files.pythonhosted.org
                answers: `bytes=A-B`, `bytes=A-`, `bytes=-N`)."""
                wanted = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range") or "")
                if wanted is None or not any(wanted.groups()):
                    return self._send(200, "application/octet-stream", data)
                first, last = wanted.groups()
                start = int(first) if first else max(len(data) - int(last), 0)
                end = min(int(last), len(data) - 1) if first and last else len(data) - 1
                if start > end:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                return self._send(206, "application/octet-stream", data[start:end + 1],
                                  {"Content-Range": f"bytes {start}-{end}/{len(data)}"})

            def _send(self, status: int, ctype: str, body: bytes,
                      headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                if not getattr(self, "head", False):
                    with index._lock:
                        index.bytes_sent += len(body)
                        if self.path.startswith("/files/"):
                            name = unquote(self.path.split("?")[0].rsplit("/", 1)[-1])
                            index.sent[name] = index.sent.get(name, 0) + len(body)
                            if status == 206:
                                index.sent_in_ranges[name] = (
                                    index.sent_in_ranges.get(name, 0) + len(body))
                    if index.bandwidth is None or not self.path.startswith("/files/"):
                        self.wfile.write(body)
                        return
                    for at in range(0, len(body), 1 << 16):
                        piece = body[at:at + (1 << 16)]
                        with index._lock:  # the piece's turn on the one link
                            sent = max(time.monotonic(), index._link_free) + (
                                len(piece) / index.bandwidth)
                            index._link_free = sent
                        time.sleep(max(0.0, sent - time.monotonic()))
                        self.wfile.write(piece)
                        self.wfile.flush()

        return Handler
