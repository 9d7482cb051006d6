"""What a request to the viewer's HTTP server may reach: loopback hosts only (also in the ``Host``
header, against DNS rebinding), plain absolute URL paths without NUL bytes, static files that
resolve inside their folder (symlinks included), and one byte range of a file (RFC 9110 §14)."""

from __future__ import annotations

import ipaddress
from http import HTTPStatus
from pathlib import Path
from urllib.parse import unquote

from splatpack.core.errors import SplatpackError

LOOPBACK_NAMES = ("localhost", "localhost.")


class BadRequest(Exception):
    """A request the server refuses, with the HTTP status it answers."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and for literal loopback addresses (127.0.0.0/8, ::1)."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_port(port: int) -> None:
    if not 0 <= port <= 65535:
        raise SplatpackError(f"port {port} is not in 0..65535 (0 = any free port)")


def http_url(host: str, port: int) -> str:
    """``http://host:port/``, with an IPv6 address in brackets."""
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def host_name(host_header: str) -> str:
    """The host part of a ``Host`` header (``[::1]:8080`` → ``::1``, ``localhost:80`` → ``localhost``)."""
    h = host_header.strip()
    if h.startswith("["):
        return h[1 : h.find("]")] if "]" in h else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


def url_path(target: str) -> str:
    """The decoded path of a request target; 400 for NUL bytes or undecodable escapes, 404 for
    anything that is not a plain absolute path of plain segments."""
    raw = target.split("?", 1)[0].split("#", 1)[0]  # origin-form only: "/path?query"
    if "\x00" in raw or "%00" in raw.lower():
        raise BadRequest(HTTPStatus.BAD_REQUEST, "NUL in path")
    try:
        path = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise BadRequest(HTTPStatus.BAD_REQUEST, "path is not UTF-8") from None
    if not path.startswith("/") or "\\" in path or "\x00" in path:
        raise BadRequest(HTTPStatus.NOT_FOUND, "not found")
    segments = path[1:].split("/")
    if any(s in (".", "..") for s in segments) or "" in segments[:-1]:
        raise BadRequest(HTTPStatus.NOT_FOUND, "not found")
    return path


def static_file(root: Path, path: str) -> Path:
    """The file under the resolved folder ``root`` for the URL ``path``; 404 for folders, missing
    files and anything (a symlink included) that resolves outside the folder."""
    rel = "index.html" if path == "/" else path[1:]
    try:
        target = (root / rel).resolve()
    except (OSError, RuntimeError):
        raise BadRequest(HTTPStatus.NOT_FOUND, "not found") from None
    if not target.is_relative_to(root) or not target.is_file():
        raise BadRequest(HTTPStatus.NOT_FOUND, "not found")
    return target


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The inclusive byte range ``(first, last)`` of a single-range ``Range`` header.

    Returns None when the header is not one ``bytes=`` range (the whole file is sent, as RFC
    9110 allows); raises ValueError when the range is unsatisfiable (416)."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_s, dash, last_s = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first_s == "":  # suffix: the last N bytes
            n = int(last_s)
            if n <= 0:
                raise ValueError("empty suffix range")
            return max(0, size - n), size - 1
        first = int(first_s)
        last = size - 1 if last_s == "" else min(int(last_s), size - 1)
    except ValueError:
        if first_s.isdigit() or (first_s == "" and last_s.isdigit()):
            raise
        return None  # not a well-formed range: ignore it
    if first < 0 or first >= size or last < first:
        raise ValueError("range not satisfiable")
    return first, last
