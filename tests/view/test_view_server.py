"""``splatpack view``'s HTTP server: what it serves, what it refuses, where it listens, and the
command end to end (a subprocess, fetched from, then stopped with Ctrl-C)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from splatpack.apps.cli import main
from splatpack.core import GaussianSet
from splatpack.core.errors import SplatpackError
from splatpack.formats import save_scene
from splatpack.view.request import BadRequest, host_name, http_url, parse_range, static_file, url_path
from splatpack.view.server import ViewServer

SECRET = b"top secret, outside the static folder\n"


def fetch(server: ViewServer, path: str, method: str = "GET", headers: dict | None = None, body: bytes | None = None):
    """(status, headers, body) of one raw request: the path goes on the wire exactly as given."""
    host, port = server.address
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        name = f"[{host}]" if ":" in host else host
        conn.putheader("Host", (headers or {}).pop("Host", f"{name}:{port}"))
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A built-app stand-in (index, a module script, a wasm file), a secret beside it, a symlink
    from inside to the secret, and a small .splat scene."""
    root = tmp_path_factory.mktemp("site")
    static = root / "static"
    (static / "assets").mkdir(parents=True)
    (static / "index.html").write_text("<!doctype html><title>viewer</title>")
    (static / "assets" / "app-1234.js").write_text("console.log('hi')")
    (static / "assets" / "decoder.wasm").write_bytes(b"\0asm\1\0\0\0")
    (root / "secret.txt").write_bytes(SECRET)
    os.symlink(root / "secret.txt", static / "leak.txt")
    gs = GaussianSet.random_in_box(500, np.full(3, -1.0), np.full(3, 1.0), sh_degree=0, seed=1)
    scene = save_scene(gs, root / "scenes" / "plant.splat")
    return static, Path(scene)


@pytest.fixture(scope="module")
def server(site):
    static, scene = site
    with ViewServer([scene], static_dir=static) as s:
        yield s


def test_serves_app_config_and_file(server, site):
    _, scene = site
    st, h, body = fetch(server, "/")
    assert st == 200 and h["content-type"].startswith("text/html") and b"viewer" in body
    assert int(h["content-length"]) == len(body)
    st, h, body = fetch(server, "/assets/app-1234.js")
    assert st == 200 and h["content-type"].startswith("text/javascript") and body == b"console.log('hi')"
    st, h, _ = fetch(server, "/assets/decoder.wasm")
    assert st == 200 and h["content-type"] == "application/wasm"
    st, h, body = fetch(server, "/config.json")
    assert st == 200 and h["content-type"] == "application/json"
    size = scene.stat().st_size
    assert json.loads(body) == {"files": [{"name": "plant.splat", "url": "/files/plant.splat", "bytes": size}]}
    st, h, body = fetch(server, "/files/plant.splat")
    assert st == 200 and body == scene.read_bytes() and int(h["content-length"]) == size
    assert h["content-type"] == "application/octet-stream" and h["accept-ranges"] == "bytes"
    st, h, body = fetch(server, "/files/plant.splat?v=2")  # a query string does not change the file
    assert st == 200 and body == scene.read_bytes()


def test_head_and_ranges(server, site):
    _, scene = site
    data, size = scene.read_bytes(), scene.stat().st_size
    st, h, body = fetch(server, "/files/plant.splat", "HEAD")
    assert st == 200 and body == b"" and int(h["content-length"]) == size
    st, h, body = fetch(server, "/files/plant.splat", headers={"Range": "bytes=10-41"})
    assert st == 206 and body == data[10:42] and h["content-range"] == f"bytes 10-41/{size}"
    assert int(h["content-length"]) == 32
    st, h, body = fetch(server, "/files/plant.splat", headers={"Range": "bytes=-32"})
    assert st == 206 and body == data[-32:]
    st, h, body = fetch(server, "/files/plant.splat", headers={"Range": f"bytes={size - 5}-"})
    assert st == 206 and body == data[-5:]
    st, h, _ = fetch(server, "/files/plant.splat", headers={"Range": f"bytes={size}-"})
    assert st == 416 and h["content-range"] == f"bytes */{size}"
    st, _, body = fetch(server, "/files/plant.splat", headers={"Range": "bytes=0-1,4-5"})  # multi-range: whole file
    assert st == 200 and body == data


def test_parse_range():
    assert parse_range("bytes=0-0", 10) == (0, 0)
    assert parse_range("bytes=5-100", 10) == (5, 9)
    assert parse_range("bytes=-100", 10) == (0, 9)
    assert parse_range("items=0-1", 10) is None and parse_range("bytes=a-b", 10) is None
    for bad in ("bytes=10-", "bytes=5-4", "bytes=-0"):
        with pytest.raises(ValueError):
            parse_range(bad, 10)


def test_request_checks(tmp_path):
    """The request seam on its own: Host header, URL path, static file lookup, URL of an address."""
    assert host_name("[::1]:8080") == "::1" and host_name("localhost:80") == "localhost" and host_name("::1") == "::1"
    assert http_url("::1", 80) == "http://[::1]:80/" and http_url("127.0.0.1", 8) == "http://127.0.0.1:8/"
    assert url_path("/assets/a%20b.js?x=1#y") == "/assets/a b.js"
    for target, status in [("/a%00b", 400), ("/%ff", 400), ("/../x", 404), ("//x", 404), ("x", 404), ("/a\\b", 404)]:
        with pytest.raises(BadRequest) as err:
            url_path(target)
        assert err.value.status == status, target
    root = (tmp_path / "static").resolve()
    root.mkdir()
    (root / "index.html").write_text("app")
    (tmp_path / "outside.txt").write_text("secret")
    (root / "link.txt").symlink_to(tmp_path / "outside.txt")
    (root / "assets").mkdir()
    assert static_file(root, "/") == root / "index.html"
    for path in ("/link.txt", "/missing.js", "/assets", "/.."):
        with pytest.raises(BadRequest) as err:
            static_file(root, path)
        assert err.value.status == 404, path


TRAVERSALS = [
    "/../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/%2e%2e%2fsecret.txt",
    "/assets/../../secret.txt",
    "/assets/..%2f..%2fsecret.txt",
    "/assets/%2e%2e/%2e%2e/secret.txt",
    "/files/../../secret.txt",
    "/files/..%2f..%2fsecret.txt",
    "/files/%2e%2e%2f%2e%2e%2fsecret.txt",
    "/..\\secret.txt",
    "/assets/..%5c..%5csecret.txt",
    "//etc/passwd",
    "/files//etc/passwd",
    "/files/%2fetc%2fpasswd",
    "/%2fetc%2fpasswd",
    "/leak.txt",
    "/assets/./app-1234.js",
    "/files/secret.txt",
    "/etc/passwd",
    "http://127.0.0.1/../secret.txt",
    "*",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_refuses_traversal(server, path):
    st, _, body = fetch(server, path)
    assert st in (400, 404), (path, st)
    assert SECRET not in body and b"root:" not in body


@pytest.mark.parametrize("path", ["/%00", "/index.html%00.js", "/files/plant.splat%00", "/assets/%c0%ae%c0%ae/x"])
def test_refuses_nul_and_bad_escapes(server, path):
    st, _, _ = fetch(server, path)
    assert st == 400, (path, st)


UNKNOWN = ["/nope", "/files/nope.splat", "/files/", "/files", "/assets/", "/assets", "/index.htm"]


@pytest.mark.parametrize("path", UNKNOWN)
def test_unknown_paths_and_folders(server, path):
    st, _, body = fetch(server, path)
    assert st == 404, (path, st)
    assert b"app-1234" not in body and b"<a href" not in body  # no listing


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "FOO"])
def test_only_get_and_head(server, method):
    st, h, _ = fetch(server, "/files/plant.splat", method, body=b"x=1")
    assert st == 405 and h["allow"] == "GET, HEAD"
    assert fetch(server, "/config.json")[0] == 200  # still serving after a refused request


def test_loopback_only(site):
    static, scene = site
    with ViewServer([scene], static_dir=static) as s:
        host, port = s.address
        assert host == "127.0.0.1" and port > 0 and s.url == f"http://127.0.0.1:{port}/"
        assert s.httpd.socket.getsockname()[0] == "127.0.0.1"
    for host in ("0.0.0.0", "::", "192.168.1.20", "example.com", ""):
        with pytest.raises(SplatpackError, match="loopback"):
            ViewServer([scene], static_dir=static, host=host)
    with pytest.raises(SplatpackError, match=r"0\.\.65535"):
        ViewServer([scene], static_dir=static, port=70000)


def test_ipv6_loopback(site):
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    static, scene = site
    try:
        s = ViewServer([scene], static_dir=static, host="::1")
    except SplatpackError as e:
        pytest.skip(f"cannot bind ::1 here: {e}")
    with s:
        assert s.address[0] == "::1" and s.url.startswith("http://[::1]:")
        assert fetch(s, "/config.json")[0] == 200


def test_foreign_host_header_refused(server):
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 must not read the scene."""
    st, _, body = fetch(server, "/files/plant.splat", headers={"Host": "evil.example:8080"})
    assert st == 400 and b"Host" in body
    assert fetch(server, "/config.json", headers={"Host": f"localhost:{server.port}"})[0] == 200


def test_missing_app_page(site, tmp_path):
    _, scene = site
    with ViewServer([scene], static_dir=tmp_path / "not-built") as s:
        assert not s.has_app
        st, h, body = fetch(s, "/")
        assert st == 503 and h["content-type"].startswith("text/html")
        assert b"npm run build" in body and b"/files/plant.splat" in body
        assert fetch(s, "/files/plant.splat")[0] == 200


def test_constructor_errors(site, tmp_path):
    static, scene = site
    with pytest.raises(SplatpackError, match="not a file"):
        ViewServer([tmp_path], static_dir=static)
    twin = tmp_path / "plant.splat"
    twin.write_bytes(scene.read_bytes())
    with pytest.raises(SplatpackError, match="two files named"):
        ViewServer([scene, twin], static_dir=static)
    with ViewServer([scene], static_dir=static) as s, pytest.raises(SplatpackError, match="cannot listen"):
        ViewServer([scene], static_dir=static, port=s.port)


def test_cli_serves_until_ctrl_c(site):
    _, scene = site
    cmd = [
        sys.executable,
        "-c",
        "import sys; from splatpack.apps.cli import main; sys.exit(main())",
        "view",
        str(scene),
        "--no-browser",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
        url = line.split("http://", 1)[1].split()[0]
        host, port = url.rstrip("/").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/config.json")
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["files"][0]["name"] == "plant.splat"
        conn.request("GET", "/files/plant.splat")
        assert conn.getresponse().read() == scene.read_bytes()
        conn.close()
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


def one_line_error(args, capsys) -> str:
    rc = main([str(a) for a in args])
    err = capsys.readouterr().err.strip()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_cli_bad_file(tmp_path, capsys):
    assert "does not exist" in one_line_error(["view", tmp_path / "nope.spk", "--no-browser"], capsys)
    assert "folder" in one_line_error(["view", tmp_path, "--no-browser"], capsys)
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    assert "notes.txt" in one_line_error(["view", junk, "--no-browser"], capsys)
    fake = tmp_path / "fake.spk"
    fake.write_bytes(b"\x89SPK" + b"\0" * 12)
    assert "fake.spk" in one_line_error(["view", fake, "--no-browser"], capsys)


def test_cli_desktop_missing_dependency(site, capsys, monkeypatch):
    _, scene = site
    monkeypatch.setitem(sys.modules, "splatpack.view.desktop", None)  # as if its dependencies were missing
    line = one_line_error(["view", scene, "--desktop"], capsys)
    assert "desktop viewer" in line and "not installed" in line


# ---- what a client can hold -----------------------------------------------------------------------


def test_an_over_long_request_line_gets_414(server):
    status, headers, _ = fetch(server, "/" + "a" * 9000)
    assert status == 414


def test_a_silent_connection_is_closed(site):
    """A half-sent request (or an idle keep-alive) is dropped after idle_seconds."""
    static, scene = site
    with (
        ViewServer([scene], static_dir=static, idle_seconds=0.3) as s,
        socket.create_connection(s.address, timeout=5) as sock,
    ):
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1")  # no end of headers
        t0 = time.monotonic()
        assert sock.recv(1024) == b""  # closed by the server, not by our 5 s timeout
        assert time.monotonic() - t0 < 3


def test_connections_beyond_the_cap_get_503_and_slots_come_back(site):
    static, scene = site
    with ViewServer([scene], static_dir=static, max_connections=3, idle_seconds=2) as s:
        held = [socket.create_connection(s.address, timeout=5) for _ in range(3)]
        try:
            time.sleep(0.2)  # the server has taken all three
            with socket.create_connection(s.address, timeout=5) as extra:
                assert extra.recv(1024).startswith(b"HTTP/1.1 503")
        finally:
            for h in held:
                h.close()
        time.sleep(0.3)  # their threads end and give the slots back
        assert fetch(s, "/config.json")[0] == 200


def test_cli_refuses_a_truncated_scene_before_serving(site, tmp_path, capsys):
    _, scene = site
    cut = tmp_path / "cut.splat"
    cut.write_bytes(scene.read_bytes()[:-7])
    assert main(["view", str(cut), "--no-browser"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "cut.splat" in err[0]
