"""The local HTTP server behind ``splatpack view``: the built web viewer plus the scene files.

================  ===================================================================
``/``             ``index.html`` of the built web app (``splatpack/view/static/``), or a
                  short page saying how to build it when it is missing (status 503)
``/<path>``       any other file under the static folder (``/assets/…``); nothing else
``/config.json``  ``{"files": [{"name", "url", "bytes"[, "framing"]}]}``: the scenes the app
                  should open, the first on start, from the camera of its ``framing``
                  (:meth:`Framing.to_json <splatpack.view.framing.Framing.to_json>`) when given
``/files/<name>`` exactly the files given to :class:`ViewServer`, by basename, with
                  ``Content-Length``, ``Accept-Ranges`` and single-range ``Range`` requests
================  ===================================================================

The server exposes local files, so it is deliberately narrow: it binds to a loopback address
only, answers ``GET`` and ``HEAD`` only (405 otherwise), lists no folder, resolves every
static path and refuses any that leaves the static folder (``..``, ``%2e%2e``, backslashes,
symlinks pointing outside), rejects NUL bytes (400), and rejects requests whose ``Host``
header is not a loopback name (DNS rebinding: a web page must not be able to read the scene
through a hostname it controls). It also bounds what a client can hold: a request line longer
than :data:`MAX_REQUEST_LINE` gets 414, a connection silent for :data:`IDLE_SECONDS` is
closed, and beyond :data:`MAX_CONNECTIONS` open connections a new one gets 503 and is closed.
"""

from __future__ import annotations

import html
import json
import logging
import mimetypes
import os
import socket
import socketserver
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

from splatpack.codecs import scene_codec
from splatpack.core.errors import SplatpackError
from splatpack.formats import detect_format, load_scene
from splatpack.spk import SpkReader
from splatpack.view.framing import Framing
from splatpack.view.request import (
    BadRequest,
    check_port,
    host_name,
    http_url,
    is_loopback_host,
    parse_range,
    static_file,
    url_path,
)

STATIC_DIR = Path(__file__).resolve().parent / "static"
BUILD_HINT = "cd viewer && npm ci && npm run build"
CHUNK = 1 << 20
MAX_REQUEST_LINE = 8192  # bytes: a longer request line (an over-long path) gets 414
IDLE_SECONDS = 15.0  # a connection that sends nothing for this long is closed (half-sent requests too)
MAX_CONNECTIONS = 64  # open connections (one thread each); the next gets 503 and is closed
BUSY_REPLY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

log = logging.getLogger(__name__)

# Types the browser must get right (module scripts and WebAssembly streaming refuse others);
# everything else falls back to ``mimetypes`` and then to octet-stream.
MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".wasm": "application/wasm",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".spk": "application/octet-stream",
    ".ply": "application/octet-stream",
    ".splat": "application/octet-stream",
    ".spz": "application/octet-stream",
    ".sog": "application/zip",
}

MISSING_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>splatpack viewer: not built</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>The viewer assets are missing</h1>
<p>The web viewer has not been built, so there is nothing to show at this address.
From the splatpack source folder run</p>
<pre>{hint}</pre>
<p>which writes the app into <code>{static}</code>, then start <code>splatpack view</code> again.</p>
<p>The scene files are still served: {files}.</p>
</body></html>
"""


def mime_type(path: Path) -> str:
    ext = path.suffix.lower()
    return MIME_TYPES.get(ext) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


@dataclass(frozen=True)
class ServedFile:
    name: str  # the basename, as in /files/<name>
    path: Path

    @property
    def url(self) -> str:
        return "/files/" + quote(self.name)


class ViewServer:
    """A threaded HTTP server on a loopback address for the web viewer and the given files.

    ``port=0`` picks a free port; :attr:`url` is known once the object exists (the socket is
    bound in the constructor). ``framings`` maps a file's name to the view the app starts from
    when it opens that file. Use as a context manager, or call :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        files: list[Path],
        static_dir: Path = STATIC_DIR,
        host: str = "127.0.0.1",
        port: int = 0,
        idle_seconds: float = IDLE_SECONDS,
        max_connections: int = MAX_CONNECTIONS,
        framings: dict[str, Framing] | None = None,
    ):
        if not is_loopback_host(host):
            raise SplatpackError(
                f"refusing to serve on {host!r}: the viewer serves local files on a loopback "
                "address only (127.0.0.1, ::1 or localhost)"
            )
        check_port(port)
        self.static_dir = Path(static_dir).resolve()
        self.files: dict[str, ServedFile] = {}
        for f in files:
            p = Path(f)
            if not p.is_file():
                raise SplatpackError("not a file (the viewer serves single files)", p)
            if p.name in self.files:
                raise SplatpackError(f"two files named {p.name!r}; the viewer serves files by name", p)
            self.files[p.name] = ServedFile(p.name, p.resolve())
        self.framings = dict(framings or {})
        unknown = self.framings.keys() - self.files.keys()
        if unknown:
            raise ValueError(f"framings for files not served: {', '.join(sorted(unknown))}")
        server_class = _IPv6Server if ":" in host else _IPv4Server
        server_class = type(server_class.__name__, (server_class,), {"max_connections": max_connections})
        try:
            self.httpd = server_class((host, port), _make_handler(self, idle_seconds))
        except OSError as e:
            raise SplatpackError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
        self._thread: threading.Thread | None = None

    # ---- addresses --------------------------------------------------------------------------------
    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port)."""
        addr = self.httpd.socket.getsockname()
        return addr[0], addr[1]

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def url(self) -> str:
        return http_url(*self.address)

    @property
    def has_app(self) -> bool:
        """Whether the web app is built (its ``index.html`` exists)."""
        return (self.static_dir / "index.html").is_file()

    def config(self) -> dict:
        """What ``/config.json`` answers: the files, each with its framing when there is one."""
        files = []
        for f in self.files.values():
            entry = {"name": f.name, "url": f.url, "bytes": f.path.stat().st_size}
            if f.name in self.framings:
                entry["framing"] = self.framings[f.name].to_json()
            files.append(entry)
        return {"files": files}

    # ---- life cycle ---------------------------------------------------------------------------------
    def start(self) -> ViewServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self.httpd.serve_forever, name="splatpack-view", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join()
            self._thread = None
        self.httpd.server_close()

    def __enter__(self) -> ViewServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _IPv4Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False  # never share a port with another server
    max_connections = MAX_CONNECTIONS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._slots = threading.BoundedSemaphore(self.max_connections)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):  # at the cap: answer without a thread
            try:
                request.sendall(BUSY_REPLY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def server_bind(self) -> None:
        # HTTPServer.server_bind also looks up the host's FQDN (a DNS query); loopback needs none.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address) -> None:
        log.debug("error serving %s", client_address, exc_info=True)  # quiet: no traceback on stderr


class _IPv6Server(_IPv4Server):
    address_family = socket.AF_INET6


def _make_handler(server: ViewServer, idle_seconds: float) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        view = server
        timeout = idle_seconds

    return Handler


class _Handler(BaseHTTPRequestHandler):
    """GET/HEAD of the static app, ``/config.json`` and ``/files/<name>``; 405 for other methods."""

    view: ViewServer
    server_version = "splatpack"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = IDLE_SECONDS  # socket timeout of every read and write on the connection

    def handle_one_request(self) -> None:
        # BaseHTTPRequestHandler answers unknown methods with 501; this server answers 405.
        try:
            self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
            if len(self.raw_requestline) > MAX_REQUEST_LINE:
                self.close_connection = True
                self.requestline, self.request_version, self.command = "", "", ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            if self.command in ("GET", "HEAD"):
                self.serve(head=self.command == "HEAD")
            else:
                self.close_connection = True  # the body (if any) is not read
                allow = {"Allow": "GET, HEAD", "Connection": "close"}
                self.reply_error(HTTPStatus.METHOD_NOT_ALLOWED, "only GET and HEAD", allow)
            self.wfile.flush()
        except (TimeoutError, ConnectionError) as e:
            log.debug("connection dropped: %s", e)
            self.close_connection = True

    def log_message(self, format: str, *args) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    # ---- routing ------------------------------------------------------------------------------------
    def serve(self, head: bool) -> None:
        try:
            host = host_name(self.headers.get("Host", ""))
            if host and not is_loopback_host(host):
                raise BadRequest(HTTPStatus.BAD_REQUEST, "Host header is not a loopback name")
            path = url_path(self.path)
            if path == "/config.json":
                body = json.dumps(self.view.config()).encode()
                return self.reply_bytes(body, "application/json", head, cache="no-cache")
            if path.startswith("/files/"):
                f = self.view.files.get(path[len("/files/") :])
                if f is None:
                    raise BadRequest(HTTPStatus.NOT_FOUND, "no such file")
                return self.reply_file(f.path, head, cache="no-cache")
            if path == "/" and not self.view.has_app:
                files = (
                    ", ".join(f'<a href="{f.url}">{html.escape(f.name)}</a>' for f in self.view.files.values())
                    or "none"
                )
                body = MISSING_PAGE.format(hint=BUILD_HINT, static=html.escape(str(self.view.static_dir)), files=files)
                return self.reply_bytes(body.encode(), MIME_TYPES[".html"], head, HTTPStatus.SERVICE_UNAVAILABLE)
            target = static_file(self.view.static_dir, path)
            cache = "public, max-age=31536000, immutable" if path.startswith("/assets/") else "no-cache"
            self.reply_file(target, head, cache=cache)
        except BadRequest as e:
            self.reply_error(e.status, str(e))
        except FileNotFoundError:  # a served file vanished
            self.reply_error(HTTPStatus.NOT_FOUND, "not found")

    # ---- responses ----------------------------------------------------------------------------------
    def common_headers(self, content_type: str, length: int, cache: str) -> None:
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.send_header("Cache-Control", cache)
        self.send_header("X-Content-Type-Options", "nosniff")

    def reply_bytes(self, body: bytes, content_type: str, head: bool, status=HTTPStatus.OK, cache="no-cache") -> None:
        self.send_response(status)
        self.common_headers(content_type, len(body), cache)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def reply_error(self, status: HTTPStatus, message: str, headers: dict[str, str] | None = None) -> None:
        body = f"{status.value} {status.phrase}: {message}\n".encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.common_headers("text/plain; charset=utf-8", len(body), "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reply_file(self, path: Path, head: bool, cache: str) -> None:
        try:
            f = open(path, "rb")  # noqa: SIM115 (the with below closes it; a failed open is a 404)
        except OSError:
            raise BadRequest(HTTPStatus.NOT_FOUND, "not found") from None
        with f:
            size = os.fstat(f.fileno()).st_size
            first, last, status = 0, size - 1, HTTPStatus.OK
            header = self.headers.get("Range")
            if header:
                try:
                    rng = parse_range(header, size)
                except ValueError:
                    return self.reply_error(
                        HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                        "range not satisfiable",
                        {"Content-Range": f"bytes */{size}"},
                    )
                if rng is not None:
                    (first, last), status = rng, HTTPStatus.PARTIAL_CONTENT
            length = last - first + 1
            self.send_response(status)
            self.common_headers(mime_type(path), length, cache)
            self.send_header("Accept-Ranges", "bytes")
            if status == HTTPStatus.PARTIAL_CONTENT:
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.end_headers()
            if head:
                return
            f.seek(first)
            left = length
            while left > 0:
                chunk = f.read(min(CHUNK, left))
                if not chunk:  # the file shrank while being sent: the client sees a short body
                    self.close_connection = True
                    return
                self.wfile.write(chunk)
                left -= len(chunk)


def viewable_format(path: str | Path) -> str:
    """The format of a scene file the viewer can open (``spk`` or a splat format), or a
    :class:`SplatpackError` naming the file: missing, a folder, or not a format splatpack reads."""
    p = Path(path)
    if not p.exists():
        raise SplatpackError("file does not exist", p)
    if p.is_dir():
        raise SplatpackError(
            "is a folder; the viewer opens single files (a SOG folder: `splatpack export FOLDER -o scene.sog` first)", p
        )
    fmt = detect_format(p)
    if fmt.name == "spk":
        with SpkReader(p) as reader:
            scene_codec(reader.meta.get("kind"), p)  # a kind no codec here reads is refused now
    else:  # read it as the readers do (bounded): a truncated or forged file fails here, not in the browser
        load_scene(p)
    return fmt.name
